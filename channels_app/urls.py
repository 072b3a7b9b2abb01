from django.urls import include, path

from channels_app import views, views_accounts, views_channel, views_customer, views_handoff, webhooks

app_name = "channels_app"

# Sign-in and passwords, under /app/ with the customer pages but open to visitors.
account_urlpatterns = [
    path("login/", views_accounts.login, name="login"),
    path("logout/", views_accounts.logout, name="logout"),
    path("password/", views_accounts.password_change, name="password_change"),
    path("password/changed/", views_accounts.password_change_done, name="password_change_done"),
    path("password/reset/", views_accounts.password_reset, name="password_reset"),
    path("password/reset/sent/", views_accounts.password_reset_done, name="password_reset_done"),
    path("password/reset/<uidb64>/<token>/", views_accounts.password_reset_confirm, name="password_reset_confirm"),
    path("password/reset/done/", views_accounts.password_reset_complete, name="password_reset_complete"),
]

# The customer pages: every one of them loads its objects through channels_app.access.
customer_urlpatterns = [
    path("", views_customer.home, name="home"),
    path("c/<uuid:customer_code>/", views_customer.dashboard, name="dashboard"),
    path("c/<uuid:customer_code>/status.json", views_customer.dashboard_status, name="dashboard_status"),
    path("c/<uuid:customer_code>/channels/new/", views_customer.channel_create, name="channel_create"),
    path("c/<uuid:customer_code>/members/", views_customer.members, name="members"),
    path("c/<uuid:customer_code>/members/add/", views_customer.member_add, name="member_add"),
    path("c/<uuid:customer_code>/members/<str:username>/role/", views_customer.member_role, name="member_role"),
    path("c/<uuid:customer_code>/members/<str:username>/remove/", views_customer.member_remove, name="member_remove"),
    path("c/<uuid:customer_code>/members/<str:username>/invite/", views_customer.member_invite, name="member_invite"),
    path("channels/<uuid:channel_code>/", views_channel.channel_detail, name="channel"),
    path("channels/<uuid:channel_code>/status.json", views_channel.channel_status_json, name="channel_status"),
    path("channels/<uuid:channel_code>/qr.png", views_channel.channel_qr, name="channel_qr"),
    path("channels/<uuid:channel_code>/pairing-code/", views_channel.channel_pairing_code, name="channel_pairing_code"),
    path("channels/<uuid:channel_code>/token/", views_channel.channel_reveal_token, name="channel_reveal_token"),
    path("channels/<uuid:channel_code>/webhook/", views_channel.channel_webhook, name="channel_webhook"),
    path("channels/<uuid:channel_code>/rename/", views_channel.channel_rename, name="channel_rename"),
    path("channels/<uuid:channel_code>/disconnect/", views_channel.channel_disconnect, name="channel_disconnect"),
    path("channels/<uuid:channel_code>/handoff/", views_channel.handoff_create, name="handoff_create"),
    path("channels/<uuid:channel_code>/handoff/revoke/", views_channel.handoff_revoke, name="handoff_revoke"),
]

# The hand-off link: no login, one channel, the signed token decides.
handoff_urlpatterns = [
    path("<str:token>/", views_handoff.handoff, name="handoff"),
    path("<str:token>/status.json", views_handoff.handoff_status, name="handoff_status"),
    path("<str:token>/qr.png", views_handoff.handoff_qr, name="handoff_qr"),
    path("<str:token>/pairing-code/", views_handoff.handoff_pairing_code, name="handoff_pairing_code"),
]

urlpatterns = [
    path("", views.root, name="root"),
    path("livez", views.livez, name="livez"),
    path("healthz", views.healthz, name="healthz"),
    path("whapi/webhook", webhooks.whapi_webhook, name="whapi_webhook"),
    path("app/", include(account_urlpatterns)),
    path("app/", include(customer_urlpatterns)),
    path("connect/", include(handoff_urlpatterns)),
]
