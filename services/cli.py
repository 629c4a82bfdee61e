"""The `feedback-factory` command line: every command reads the same FF_* settings; reports print one JSON object."""

import json
import logging

import typer

from services import db
from services.settings import get_settings

app = typer.Typer(help="Feedback Factory: production feedback and badcase monitoring for LLMs.", no_args_is_help=True)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(keys_app, name="keys")


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, default=str))


def _setup_logging() -> None:
    logging.basicConfig(level=get_settings().log_level, format="%(asctime)s %(levelname)s %(name)s %(message)s")


@db_app.command("upgrade")
def db_upgrade(revision: str = typer.Option("head", help="Target revision.")) -> None:
    """Migrate the database to the latest schema."""
    db.upgrade(get_settings().database_url, revision)
    _echo_json({"database": "upgraded", "revision": revision})


def create_key(role: str, name: str) -> str:
    """Create a key in the configured database and return the plain key."""
    from services import auth

    engine = db.make_engine(get_settings().database_url)
    with db.unit_of_work(db.session_factory(engine)) as session:
        row, plain = auth.create_key(session, role=role, name=name)
    engine.dispose()
    return plain


@keys_app.command("create")
def keys_create(role: str = typer.Option(..., "--role", help="app | reviewer | lead | ops | admin"),
                name: str = typer.Option(..., "--name", help="Who or what holds the key.")) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    _echo_json({"role": role, "name": name, "key": create_key(role, name)})


@app.command()
def serve(host: str = typer.Option(None, help="Bind address (FF_HOST)."),
          port: int = typer.Option(None, help="Port (FF_PORT).")) -> None:
    """Run the HTTP API."""
    import uvicorn

    from services.api import create_app

    _setup_logging()
    s = get_settings()
    uvicorn.run(create_app(s), host=host or s.host, port=port or s.port, log_level=s.log_level.lower())


def main() -> None:
    """Console-script entry point."""
    app()


@app.command()
def up() -> None:
    """Migrate, create an admin key, start the embedded broker, the consumer and the API (what `make run` does)."""
    from services import up as up_mod

    _setup_logging()
    up_mod.run(get_settings())


if __name__ == "__main__":
    main()
