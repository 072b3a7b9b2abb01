"""Members: owners invite by email (the invited person accepts by a signed link, with their own
account or a new one; an owner learns nothing about other accounts), change roles and remove; audited."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import timezone

from channels_app.models import AuditLog, Invitation, Membership

User = get_user_model()


def members_url(customer) -> str:
    return reverse("channels_app:members", args=[customer.code])


def invite(client, customer, **data):
    return client.post(reverse("channels_app:member_invite", args=[customer.code]), data)


def role_of(user, customer=None) -> str:
    memberships = Membership.objects.filter(user=user)
    return (memberships.filter(customer=customer) if customer else memberships).get().role


GOOD = "dora-pass-2024!"


def invitation_link(mail) -> str:
    return re.search(r"https?://testserver(/app/invitations/\S+/)", mail.body).group(1)


def test_it_works(client, alice, bob, customer):
    client.force_login(alice)
    page = client.get(members_url(customer)).content.decode()
    assert "alice" in page and "bob@acme.example" in page
    assert "Invite a member" in page


def test_members_see_the_list_but_only_owners_change_it(client, bob, customer):
    client.force_login(bob)
    page = client.get(members_url(customer)).content.decode()
    assert "bob" in page
    assert "Invite a member" not in page and "Remove" not in page


def test_it_checks_membership(client, charlie, customer):
    client.force_login(charlie)
    assert client.get(members_url(customer)).status_code == 404


def test_an_invitation_adds_nobody_until_it_is_accepted(client, alice, customer, charlie, mailoutbox):
    client.force_login(alice)
    response = invite(client, customer, email="CHARLIE@other.example", role="viewer")
    assert response["Location"] == members_url(customer)
    assert not Membership.objects.filter(customer=customer, user=charlie).exists()
    (mail,) = mailoutbox
    assert mail.to == ["CHARLIE@other.example"]
    assert mail.subject == "You are invited to Acme Corp on Channel portal"
    assert "alice invites you to Acme Corp" in mail.body
    entry = AuditLog.objects.get(action="member.invite")
    assert (entry.actor, entry.customer, entry.detail) == (alice, customer, "CHARLIE@other.example as viewer")


@pytest.mark.parametrize("email", ["charlie@other.example", "nobody@nowhere.example", "root@partner.example"])
def test_inviting_says_the_same_whether_or_not_an_account_exists(client, alice, customer, charlie, email, mailoutbox):
    User.objects.create_superuser("root", "root@partner.example", "root-password")
    client.force_login(alice)
    before = Membership.objects.filter(customer=customer).count()
    page = client.get(invite(client, customer, email=email, role="owner")["Location"]).content.decode()
    assert f"An invitation is on its way to {email}; it works for three days." in page
    assert "exists" not in page and "already" not in page
    assert Membership.objects.filter(customer=customer).count() == before
    assert len(mailoutbox) == 1


def test_an_existing_user_accepts_with_their_account(client, alice, customer, charlie, mailoutbox):
    client.force_login(alice)
    invite(client, customer, email="charlie@other.example", role="operator")
    link = invitation_link(mailoutbox[0])
    client.force_login(charlie)
    page = client.get(link).content.decode()
    assert "Join Acme Corp" in page and "signed in as <strong>charlie</strong>" in page
    response = client.post(link)
    assert response["Location"] == reverse("channels_app:dashboard", args=[customer.code])
    assert role_of(charlie, customer) == "operator"
    assert AuditLog.objects.get(action="member.join").detail == "charlie as operator"
    assert client.get(link).status_code == 410  # it works once


def test_a_new_person_accepts_by_creating_an_account(client, alice, customer, mailoutbox):
    client.force_login(alice)
    invite(client, customer, email="dora@acme.example", role="viewer")
    link = invitation_link(mailoutbox[0])
    client.logout()
    page = client.get(link).content.decode()
    assert "Create the account and join" in page and "dora@acme.example" in page
    response = client.post(link, {"username": "dora", "password1": "dora-pass-2024!", "password2": "dora-pass-2024!"})
    assert response["Location"] == reverse("channels_app:dashboard", args=[customer.code])
    dora = User.objects.get(username="dora")
    assert (dora.email, role_of(dora)) == ("dora@acme.example", "viewer")
    assert client.session["_auth_user_id"] == str(dora.pk)
    client.logout()
    assert client.login(username="dora", password="dora-pass-2024!")


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (
            {"username": "alice", "password1": "dora-pass-2024!", "password2": "dora-pass-2024!"},
            "username",
            "already exists",
        ),
        (
            {"username": "bad name!", "password1": "dora-pass-2024!", "password2": "dora-pass-2024!"},
            "username",
            "valid username",
        ),
        (
            {"username": "dora", "password1": "dora-pass-2024!", "password2": "other-pass-2024!"},
            "password2",
            "didn’t match",
        ),
        ({"username": "dora", "password1": "123", "password2": "123"}, "password2", "too short"),
    ],
)
def test_the_signup_form_is_validated_next_to_the_field(client, alice, customer, mailoutbox, data, field, message):
    client.force_login(alice)
    invite(client, customer, email="dora@acme.example", role="viewer")
    client.logout()
    before = Membership.objects.filter(customer=customer).count()
    response = client.post(invitation_link(mailoutbox[0]), data)
    assert response.status_code == 200
    assert message in " ".join(response.context["signup_form"].errors[field])
    assert not User.objects.filter(username="dora").exists()
    assert Membership.objects.filter(customer=customer).count() == before


def test_an_expired_cancelled_replaced_or_tampered_invitation_does_not_work(
    client, alice, customer, charlie, mailoutbox
):
    client.force_login(alice)
    invite(client, customer, email="charlie@other.example", role="owner")
    first = invitation_link(mailoutbox[0])
    invite(client, customer, email="charlie@other.example", role="viewer")
    second = invitation_link(mailoutbox[1])
    client.force_login(charlie)
    assert client.post(first).status_code == 410  # replaced by the newer one
    assert client.get(second[:-3] + "xx/").status_code == 410  # tampered
    with time_machine.travel(timezone.now() + timedelta(days=3, minutes=1)):
        assert client.post(second).status_code == 410  # expired
    client.force_login(alice)
    client.post(
        reverse("channels_app:invitation_cancel", args=[customer.code, Invitation.objects.get(revoked_at=None).code])
    )
    client.force_login(charlie)
    assert client.post(second).status_code == 410  # cancelled
    assert not Membership.objects.filter(customer=customer, user=charlie).exists()


def test_accepting_as_a_member_already_changes_nothing(client, alice, bob, customer, mailoutbox):
    client.force_login(alice)
    invite(client, customer, email="bob@acme.example", role="owner")
    client.force_login(bob)
    page = client.post(invitation_link(mailoutbox[0]), follow=True).content.decode()
    assert "You are a member of Acme Corp already." in page
    assert role_of(bob) == "operator"


def test_pending_invitations_are_listed_and_can_be_sent_again(client, alice, customer, mailoutbox):
    client.force_login(alice)
    invite(client, customer, email="dora@acme.example", role="viewer")
    page = client.get(members_url(customer)).content.decode()
    assert "Invitations not accepted yet" in page and "dora@acme.example" in page
    code = Invitation.objects.get().code
    response = client.post(reverse("channels_app:invitation_resend", args=[customer.code, code]), follow=True)
    assert "An invitation is on its way to dora@acme.example" in response.content.decode()
    assert len(mailoutbox) == 2
    assert Invitation.objects.filter(revoked_at=None).count() == 1  # the resent one replaced the first


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"email": "", "role": "viewer"}, "email", "This field is required."),
        ({"email": "not-an-email", "role": "viewer"}, "email", "Enter a valid email address."),
        ({"email": "dora@acme.example", "role": "king"}, "role", "Select a valid choice"),
    ],
)
def test_the_invite_form_is_validated_next_to_the_field(client, alice, customer, data, field, message, mailoutbox):
    client.force_login(alice)
    response = invite(client, customer, **data)
    assert message in " ".join(response.context["invite_form"].errors[field])
    assert mailoutbox == [] and not Invitation.objects.exists()


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


def test_it_requires_owner_access(client, bob, alice, customer, mailoutbox):
    client.force_login(bob)
    assert invite(client, customer, email="d@acme.example", role="owner").status_code == 403
    assert (
        client.post(reverse("channels_app:member_role", args=[customer.code, "bob"]), {"role": "owner"}).status_code
        == 403
    )
    assert client.post(reverse("channels_app:member_remove", args=[customer.code, "alice"])).status_code == 403
    assert (role_of(bob), role_of(alice)) == ("operator", "owner")
    assert mailoutbox == []


def test_a_mail_server_failure_is_said_plainly(client, alice, customer, monkeypatch):
    import smtplib

    from channels_app import members

    def refuse(*args, **kwargs):
        raise smtplib.SMTPConnectError(421, "try later")

    monkeypatch.setattr(members, "send_mail", refuse)
    client.force_login(alice)
    response = invite(client, customer, email="dora@acme.example", role="viewer")
    page = client.get(response["Location"]).content.decode()
    assert "The invitation to dora@acme.example could not be sent; try “Resend” later." in page
    assert "Resend" in page


def test_a_new_account_cannot_differ_from_an_existing_one_in_case_only(client, alice, customer, mailoutbox):
    client.force_login(alice)
    invite(client, customer, email="dora@acme.example", role="viewer")
    client.logout()
    response = client.post(invitation_link(mailoutbox[0]), {"username": "ALICE", "password1": GOOD, "password2": GOOD})
    assert "already exists" in " ".join(response.context["signup_form"].errors["username"])
    assert not User.objects.filter(username="ALICE").exists()
