"""Reading the store's tables directly, past the store's own code, to prove what it wrote."""

from __future__ import annotations

import sqlalchemy as sa

from dbfleet.store.engine import create_store_engine


def api_token_rows(url) -> list[dict]:
    """Every api_tokens row."""
    engine = create_store_engine(url)
    try:
        with engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(sa.text('SELECT * FROM api_tokens ORDER BY name'))]
    finally:
        engine.dispose()
