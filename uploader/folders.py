"""Where the tool keeps its things on each system: state (journals, locks, the page's files) and config.

The system's own convention, through ``platformdirs``:

| system | state folder | config file |
| --- | --- | --- |
| Linux | ``~/.local/state/signal-uploader`` | ``~/.config/signal-uploader/config.toml`` |
| macOS | ``~/Library/Application Support/signal-uploader`` | the same folder's ``config.toml`` |
| Windows | ``%LOCALAPPDATA%\\signal-uploader`` | the same folder's ``config.toml`` |

``$XDG_STATE_HOME`` and ``$XDG_CONFIG_HOME``, when set, are honoured on every
system (on Linux they are the convention itself), so a state folder made by
an earlier version on Linux is the one used now; on macOS and Windows, an
earlier version's ``~/.local/state/signal-uploader`` is kept while it is the
only one.

>>> import os
>>> os.environ["XDG_STATE_HOME"] = "/srv/state"
>>> state_folder().as_posix()
'/srv/state/signal-uploader'
>>> del os.environ["XDG_STATE_HOME"]
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "signal-uploader"


def state_folder() -> Path:
    """The default state folder (``--state-dir`` and ``state_dir`` in a config file choose another).

    Versions before this one used ``~/.local/state/signal-uploader`` on every
    system. Where the system's own folder is another one (macOS, Windows) and
    holds no journals yet while that one does, that one is kept: its journals
    know which rows were confirmed, and a new empty folder would send them
    again. (On those systems the config file lives in the state folder, so
    a config file written there does not move the journals.)
    """
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return Path(xdg) / APP
    import platformdirs

    own = Path(platformdirs.user_state_dir(APP, appauthor=False))
    earlier = Path.home() / ".local" / "state" / APP
    if own != earlier and not (own / "journals").is_dir() and (earlier / "journals").is_dir():
        return earlier
    return own


def config_file() -> Path:
    """The user's config file, read by the commands when ``--config`` is not given and it exists."""
    xdg = os.environ.get("XDG_CONFIG_HOME")
    if xdg:
        return Path(xdg) / APP / "config.toml"
    import platformdirs

    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "config.toml"


def config_or_default(given: str | Path | None) -> Path | None:
    """The config file a command reads: the one given, else the user's own if there is one."""
    if given is not None:
        return Path(given)
    default = config_file()
    return default if default.is_file() else None
