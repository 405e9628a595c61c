"""Docker Swarm as a source of evidence and facts: services, their tasks on every node, rollbacks.

Modules: ``api`` (the manager's service, task, node and event calls), ``select``
(``--swarm-service`` / ``--stack``), ``snapshot`` (one read of a service, its tasks, nodes
and images), ``evidence`` (the bundle: every task's logs through the manager, documents,
manifest, with the container collector's machinery), ``events`` (service events parsed),
``facts`` (versions, UpdateStatus, failed tasks, a rollback's identity).

The stages that record a rollback (ledger, draft, ticket) are in ``rollback_pm.swarm_hook``;
the watcher is ``rollback_pm.watch``.
"""
