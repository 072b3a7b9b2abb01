from django.urls import include, path

from alerts import partner
from alerts import views as alert_views
from api import views as api_views
from channels_app import webhooks
from channels_app.views import accounts, channel, common, customer, handoff, members, metrics
from events import views as event_views

app_name = "channels_app"

# Sign-in and passwords, under /app/ with the customer pages but open to visitors.
account_urlpatterns = [
    path("login/", accounts.login, name="login"),
    path("logout/", accounts.logout, name="logout"),
    path("password/", accounts.password_change, name="password_change"),
    path("password/changed/", accounts.password_change_done, name="password_change_done"),
    path("password/reset/", accounts.password_reset, name="password_reset"),
    path("password/reset/sent/", accounts.password_reset_done, name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", accounts.password_reset_confirm, name="password_reset_confirm"),
    path("password/reset/done/", accounts.password_reset_complete, name="password_reset_complete"),
    path("two-factor/", accounts.two_factor_page, name="two_factor"),
    path("profile/", accounts.profile_page, name="profile"),
    # An invitation to a customer, accepted with the account one is signed in with or a new one.
    path("invitations/<str:token>/", members.invitation_page, name="invitation"),
]

# The customer pages: every one of them loads its objects through channels_app.access.
customer_urlpatterns = [
    path("", customer.home_page, name="home"),
    path("c/<uuid:customer_code>/", customer.dashboard_page, name="dashboard"),
    path("c/<uuid:customer_code>/status.json", customer.dashboard_status_json, name="dashboard_status"),
    path("c/<uuid:customer_code>/channels/new/", customer.channel_request_page, name="channel_create"),
    path("c/<uuid:customer_code>/alerts/", alert_views.alerts_page, name="alerts"),
    path("c/<uuid:customer_code>/alerts/add/", alert_views.alert_recipient_add_post, name="alert_recipient_add"),
    path(
        "c/<uuid:customer_code>/alerts/<uuid:recipient_code>/remove/",
        alert_views.alert_recipient_remove_post,
        name="alert_recipient_remove",
    ),
    path("c/<uuid:customer_code>/events/", event_views.events_page, name="events"),
    path("c/<uuid:customer_code>/events/add/", event_views.events_endpoint_add_post, name="events_endpoint_add"),
    path(
        "c/<uuid:customer_code>/events/<uuid:endpoint_code>/",
        event_views.events_endpoint_page,
        name="events_endpoint",
    ),
    path(
        "c/<uuid:customer_code>/events/<uuid:endpoint_code>/secret/",
        event_views.events_secret_rotate_post,
        name="events_secret_rotate",
    ),
    path(
        "c/<uuid:customer_code>/events/<uuid:endpoint_code>/switch/",
        event_views.events_endpoint_switch_post,
        name="events_endpoint_switch",
    ),
    path(
        "c/<uuid:customer_code>/events/<uuid:endpoint_code>/delete/",
        event_views.events_endpoint_delete_post,
        name="events_endpoint_delete",
    ),
    path(
        "c/<uuid:customer_code>/events/<uuid:endpoint_code>/replay/",
        event_views.events_replay_range_post,
        name="events_replay_range",
    ),
    path(
        "c/<uuid:customer_code>/events/<uuid:endpoint_code>/replay/<str:webhook_id>/",
        event_views.events_replay_post,
        name="events_replay",
    ),
    path("c/<uuid:customer_code>/api-keys/", api_views.api_keys_page, name="api_keys"),
    path("c/<uuid:customer_code>/api-keys/new/", api_views.api_key_create_post, name="api_key_create"),
    path(
        "c/<uuid:customer_code>/api-keys/<uuid:key_code>/revoke/",
        api_views.api_key_revoke_post,
        name="api_key_revoke",
    ),
    path("c/<uuid:customer_code>/members/", members.members_page, name="members"),
    path("c/<uuid:customer_code>/members/invite/", members.member_invite_post, name="member_invite"),
    path(
        "c/<uuid:customer_code>/invitations/<uuid:invitation_code>/resend/",
        members.invitation_resend_post,
        name="invitation_resend",
    ),
    path(
        "c/<uuid:customer_code>/invitations/<uuid:invitation_code>/cancel/",
        members.invitation_cancel_post,
        name="invitation_cancel",
    ),
    path("c/<uuid:customer_code>/members/<str:username>/role/", members.member_role_post, name="member_role"),
    path("c/<uuid:customer_code>/members/<str:username>/remove/", members.member_remove_post, name="member_remove"),
    path("channels/<uuid:channel_code>/", channel.channel_page, name="channel"),
    path("channels/<uuid:channel_code>/status.json", channel.channel_status_json, name="channel_status"),
    path("channels/<uuid:channel_code>/qr.png", channel.channel_qr_png, name="channel_qr"),
    path("channels/<uuid:channel_code>/pairing-code/", channel.channel_pairing_code_post, name="channel_pairing_code"),
    path("channels/<uuid:channel_code>/token/", channel.channel_reveal_token_post, name="channel_reveal_token"),
    path("channels/<uuid:channel_code>/webhook/", channel.channel_webhook_post, name="channel_webhook"),
    path("channels/<uuid:channel_code>/rename/", channel.channel_rename_post, name="channel_rename"),
    path("channels/<uuid:channel_code>/disconnect/", channel.channel_disconnect_page, name="channel_disconnect"),
    path("channels/<uuid:channel_code>/restart/", channel.channel_restart_post, name="channel_restart"),
    path("channels/<uuid:channel_code>/delete/", channel.channel_delete_page, name="channel_delete"),
    path("channels/<uuid:channel_code>/handoff/", channel.handoff_create_post, name="handoff_create"),
    path("channels/<uuid:channel_code>/handoff/revoke/", channel.handoff_revoke_post, name="handoff_revoke"),
]

# The hand-off link: no login, one channel, the signed token decides.
handoff_urlpatterns = [
    # The link sets its token in a cookie and leads to the token-less page (no token in access logs).
    path("", handoff.handoff_page, name="handoff_page"),
    path("status.json", handoff.handoff_status_json, name="handoff_status"),
    path("qr.png", handoff.handoff_qr_png, name="handoff_qr"),
    path("pairing-code/", handoff.handoff_pairing_code_post, name="handoff_pairing_code"),
    path("<str:token>/", handoff.handoff_open, name="handoff"),
]

urlpatterns = [
    path("", common.root, name="root"),
    path("livez", common.livez, name="livez"),
    path("healthz", common.healthz, name="healthz"),
    # The fleet's figures for Prometheus, behind METRICS_TOKEN (404 without one).
    path("metrics", metrics.metrics, name="metrics"),
    path("whapi/webhook", webhooks.whapi_webhook, name="whapi_webhook"),
    path("whapi/partner/<str:token>", partner.partner_webhook, name="partner_webhook"),
    path("app/", include(account_urlpatterns)),
    path("app/", include(customer_urlpatterns)),
    path("connect/", include(handoff_urlpatterns)),
]
