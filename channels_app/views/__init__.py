"""The customer pages (`/app/`, `/connect/`), one module per area.

- common: probes, the site root, error pages and the layout helper `page`;
- accounts: sign-in and passwords;
- customer: the dashboard and requesting a channel;
- members: the members page;
- channel: one channel's page and its forms;
- handoff: the hand-off page (no login, a signed link);
- channel_status: what the pages show about where a channel stands, and its QR code.

Views are named by what they answer: `_page` (HTML), `_json`, `_png`, `_post` (a form that redirects).
Each starts with a tenancy helper of `channels_app.access` (or `handoff.get_channel_for_handoff`) and
changes things only through `channels_app.actions`, `members` or `handoff`.
"""
