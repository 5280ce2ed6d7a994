"""Test videos: the project's synthetic makers (see ``deidvid.synthetic``)."""

from deidvid.synthetic import *  # noqa: F401,F403
