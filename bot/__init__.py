"""Klachtwijzer's application, in layers whose imports point one way (`.importlinter` checks it):

    bot/root/       composition root: settings, `build_app` wires every part, the CLI
    bot/channels/   thin adapters per messenger (telegram/, whatsapp, terminal), behind ports.py
    bot/services/   channel-neutral services: intake, confidant handoff, register, reports, jobs
    bot/mail/       mails to the organisation: composing, OpenPGP, the outbox worker
    storage/        SQLAlchemy 2 async: tables, units of work, encryption at rest
    flows/          the domain: procedures, the state machine, rules and texts; pure, no I/O
"""
