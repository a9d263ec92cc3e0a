"""Application services, channel-neutral: the intake, the confidant handoff, the register, reports
and the daily jobs. They use flows/ and storage/, and reach people only through the ports in
`bot.services.delivery`; they never import a channel or the composition root."""
