"""Mail to the organisation: composing the Dutch mails, OpenPGP encryption, and the outbox worker."""
