"""Members: owners add (by username + email, inviting new users), change roles and remove; audited."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from channels_app.models import AuditLog, Membership

User = get_user_model()


def members_url(customer) -> str:
    return reverse("channels_app:members", args=[customer.code])


def add(client, customer, **data):
    return client.post(reverse("channels_app:member_add", args=[customer.code]), data)


def role_of(user) -> str:
    return Membership.objects.get(user=user).role


def test_it_works(client, alice, bob, customer):
    client.force_login(alice)
    page = client.get(members_url(customer)).content.decode()
    assert "alice" in page and "bob@acme.example" in page
    assert "Add a member" in page


def test_members_see_the_list_but_only_owners_change_it(client, bob, customer):
    client.force_login(bob)
    page = client.get(members_url(customer)).content.decode()
    assert "bob" in page
    assert "Add a member" not in page and "Remove" not in page


def test_it_checks_membership(client, charlie, customer):
    client.force_login(charlie)
    assert client.get(members_url(customer)).status_code == 404


def test_an_owner_adds_an_existing_user_by_username_and_email(client, alice, customer, charlie):
    client.force_login(alice)
    response = add(client, customer, username="Charlie", email="CHARLIE@other.example", role="viewer")
    assert response["Location"] == members_url(customer)
    assert Membership.objects.get(customer=customer, user=charlie).role == "viewer"
    entry = AuditLog.objects.get(action="member.add")
    assert (entry.actor, entry.customer, entry.detail) == (alice, customer, "charlie as viewer")


def test_an_existing_user_needs_the_right_email(client, alice, customer, charlie, mailoutbox):
    client.force_login(alice)
    response = add(client, customer, username="charlie", email="guess@other.example", role="owner")
    assert "exists with another email address" in response.context["add_form"].errors["username"][0]
    assert not Membership.objects.filter(customer=customer, user=charlie).exists()
    assert mailoutbox == []


def test_a_member_cannot_be_added_twice(client, alice, bob, customer):
    client.force_login(alice)
    response = add(client, customer, username="bob", email="bob@acme.example", role="owner")
    assert "bob is a member already." in response.content.decode()
    assert role_of(bob) == "operator"


def test_a_new_user_is_invited_by_email_and_sets_a_password(client, alice, customer, mailoutbox):
    client.force_login(alice)
    response = add(client, customer, username="dora", email="dora@acme.example", role="operator")
    assert response["Location"] == members_url(customer)
    dora = User.objects.get(username="dora")
    assert not dora.has_usable_password()
    assert Membership.objects.get(user=dora).role == "operator"
    (mail,) = mailoutbox
    assert mail.to == ["dora@acme.example"]
    assert mail.subject == "You are invited to Acme Corp on the channel portal"
    assert "alice added you to Acme Corp" in mail.body
    link = re.search(r"https?://testserver(/app/password/reset/\S+)", mail.body).group(1)

    client.logout()
    response = client.get(link, follow=True)
    client.post(
        response.redirect_chain[-1][0], {"new_password1": "dora-pass-2024!", "new_password2": "dora-pass-2024!"}
    )
    assert client.login(username="dora", password="dora-pass-2024!")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"username": "", "email": "x@acme.example", "role": "viewer"}, "username", "This field is required."),
        ({"username": "bad name!", "email": "x@acme.example", "role": "viewer"}, "username", "Enter a valid username"),
        ({"username": "dora", "email": "not-an-email", "role": "viewer"}, "email", "Enter a valid email address."),
        ({"username": "dora", "email": "dora@acme.example", "role": "king"}, "role", "Select a valid choice"),
    ],
)
def test_the_add_form_is_validated_next_to_the_field(client, alice, customer, data, field, message):
    client.force_login(alice)
    response = add(client, customer, **data)
    assert message in " ".join(response.context["add_form"].errors[field])
    assert not User.objects.filter(username="dora").exists()


def test_an_owner_changes_a_role(client, alice, bob, customer):
    client.force_login(alice)
    response = client.post(reverse("channels_app:member_role", args=[customer.code, "bob"]), {"role": "owner"})
    assert response["Location"] == members_url(customer)
    assert role_of(bob) == "owner"
    assert AuditLog.objects.get(action="member.role").detail == "bob: operator → owner"


def test_the_last_owner_stays_an_owner(client, alice, bob, customer):
    client.force_login(alice)
    response = client.post(
        reverse("channels_app:member_role", args=[customer.code, "alice"]), {"role": "viewer"}, follow=True
    )
    assert "Every customer needs an owner" in response.content.decode()
    assert role_of(alice) == "owner"
    response = client.post(reverse("channels_app:member_remove", args=[customer.code, "alice"]), follow=True)
    assert "Every customer needs an owner" in response.content.decode()
    assert role_of(alice) == "owner"


def test_an_invalid_role_is_refused(client, alice, bob, customer):
    client.force_login(alice)
    response = client.post(
        reverse("channels_app:member_role", args=[customer.code, "bob"]), {"role": "god"}, follow=True
    )
    assert "Choose owner, operator or viewer." in response.content.decode()
    assert role_of(bob) == "operator"


def test_an_owner_removes_a_member(client, alice, bob, customer):
    client.force_login(alice)
    response = client.post(reverse("channels_app:member_remove", args=[customer.code, "bob"]), follow=True)
    assert "bob is no longer a member." in response.content.decode()
    assert not Membership.objects.filter(user=bob).exists()
    assert User.objects.filter(username="bob").exists()  # the account stays
    assert AuditLog.objects.get(action="member.remove").detail == "bob (operator)"
    # bob lost access at once.
    client.force_login(bob)
    assert client.get(members_url(customer)).status_code == 404


def test_an_owner_may_leave_when_another_owner_stays(client, alice, bob, customer):
    Membership.objects.filter(user=bob).update(role="owner")
    client.force_login(alice)
    response = client.post(reverse("channels_app:member_remove", args=[customer.code, "alice"]))
    assert response["Location"] == reverse("channels_app:home")
    assert not Membership.objects.filter(user=alice, customer=customer).exists()


def test_it_requires_owner_access(client, bob, alice, customer):
    client.force_login(bob)
    assert add(client, customer, username="dora", email="d@acme.example", role="owner").status_code == 403
    assert (
        client.post(reverse("channels_app:member_role", args=[customer.code, "bob"]), {"role": "owner"}).status_code
        == 403
    )
    assert client.post(reverse("channels_app:member_remove", args=[customer.code, "alice"])).status_code == 403
    assert (role_of(bob), role_of(alice)) == ("operator", "owner")


def test_an_invitation_can_be_sent_again_until_a_password_is_chosen(client, alice, customer, mailoutbox):
    client.force_login(alice)
    add(client, customer, username="dora", email="dora@acme.example", role="viewer")
    resend = reverse("channels_app:member_invite", args=[customer.code, "dora"])
    response = client.post(resend, follow=True)
    assert "An invitation is on its way to dora@acme.example" in response.content.decode()
    assert len(mailoutbox) == 2
    assert AuditLog.objects.get(action="member.invite").detail == "dora"

    dora = User.objects.get(username="dora")
    dora.set_password("dora-pass-2024!")
    dora.save()
    response = client.post(resend, follow=True)
    assert "has a password already" in response.content.decode()
    assert len(mailoutbox) == 2


def test_a_mail_server_failure_is_said_plainly(client, alice, customer, monkeypatch):
    import smtplib

    from channels_app import members

    def refuse(*args, **kwargs):
        raise smtplib.SMTPConnectError(421, "try later")

    monkeypatch.setattr(members, "send_mail", refuse)
    client.force_login(alice)
    response = add(client, customer, username="dora", email="dora@acme.example", role="viewer")
    page = client.get(response["Location"]).content.decode()
    assert "dora is now a member (Viewer)." in page
    assert "could not be sent; try “Resend invitation” later." in page
    assert "Resend invitation" in page
