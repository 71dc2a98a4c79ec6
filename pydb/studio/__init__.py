"""`pydb studio`: a local web page to browse and edit a database's rows, served on 127.0.0.1 only.

`open_studio(url)` connects and builds the app (read-only on production targets unless writes are
allowed); `serve(studio)` runs it with uvicorn until Ctrl-C. The pages reuse pydb's reflection,
relations, relational queries, `updated_at` rule and seed value converters.
"""

from pydb.studio.app import Mode, Studio, open_studio
from pydb.studio.server import DEFAULT_PORT, serve

__all__ = ["DEFAULT_PORT", "Mode", "Studio", "open_studio", "serve"]
