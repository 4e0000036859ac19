# Invoke tasks of this repository: the kmrelease engine's collection (kmrelease/tasks.py).
from kmrelease.tasks import ns  # noqa: F401
