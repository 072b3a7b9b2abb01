"""The periodic "alerts" schedule, every minute: tell the disconnects that lasted, renew what the
renewal rules say, tell the paid time running out, and send what is queued. One round per run (it
does not hold a worker process between runs): a disconnect is told within about a minute after its
grace, and a retry waits its delay plus up to a minute."""

from alerts.delivery import BATCH, notifications_send_due
from alerts.renewals import renewals_due
from alerts.rules import disconnect_alerts_due, expiry_reminders_due, scan_reminders_due

# Rounds of sending one run makes at most (BATCH notifications each), so a backlog after an outage
# is worked off over a few runs instead of holding a worker.
SEND_ROUNDS = 10


def alerts_sweep() -> int:
    """Tell due disconnects, make due renewals, tell expiry reminders, then try the due notifications;
    returns how many were tried."""
    disconnect_alerts_due()
    renewals_due()  # before the reminders: a channel renewed now needs none
    expiry_reminders_due()
    scan_reminders_due()
    tried = 0
    for _ in range(SEND_ROUNDS):
        batch = notifications_send_due()
        tried += batch
        if batch < BATCH:
            break
    return tried
