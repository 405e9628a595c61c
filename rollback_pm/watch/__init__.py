"""``rollback-pm watch``: Swarm's own rollbacks, caught from the engine's event stream.

``watcher.Watcher`` follows the events and runs the Swarm hook per rollback;
``stream`` reads the events in bounded windows; ``checkpoint`` keeps where to resume.
"""

from rollback_pm.watch.watcher import Watcher, WatchOptions, WatchReport

__all__ = ["WatchOptions", "WatchReport", "Watcher"]
