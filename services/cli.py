"""The `feedback-factory` command line: every command reads the same FF_* settings; reports print one JSON object."""

import json
from pathlib import Path

import typer

from services import cli_drift, cli_retrain, db, runtime
from services.settings import get_settings

app = typer.Typer(help="Feedback Factory: production feedback and badcase monitoring for LLMs.", no_args_is_help=True)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
app.add_typer(db_app, name="db")
dlq_app = typer.Typer(help="Dead letters.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(cli_drift.app, name="drift")
app.add_typer(cli_drift.probes_app, name="probes")
app.add_typer(cli_retrain.app, name="retrain")


def _echo_json(obj) -> None:
    typer.echo(json.dumps(obj, default=str))


def _setup_logging() -> None:
    runtime.setup_logging(get_settings())


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
          port: int = typer.Option(None, help="Port (FF_PORT)."),
          workers: int = typer.Option(None, help="Worker processes (FF_WORKERS).")) -> None:
    """Run the HTTP API."""
    import uvicorn

    _setup_logging()
    s = get_settings()
    n = workers or s.workers
    common = {"host": host or s.host, "port": port or s.port, "log_level": s.log_level.lower()}
    if n > 1:  # worker processes import the app themselves and read the same FF_* settings
        uvicorn.run("services.api:served_app", factory=True, workers=n, **common)
    else:
        from services.api import served_app

        uvicorn.run(served_app(s), **common)


def main() -> None:
    """Console-script entry point."""
    app()


@app.command()
def up(demo: bool = typer.Option(False, "--demo", help="Also feed the synthetic stream through the whole loop.")) -> None:
    """Migrate, create an admin key, start the embedded broker, the consumer and the API (what `make run` does)."""
    from services import up as up_mod

    _setup_logging()
    up_mod.run(get_settings(), demo=demo)


@app.command()
def consume(metrics_port: int = typer.Option(None, help="Prometheus port (FF_KAFKA_METRICS_PORT; 0 disables).")) -> None:
    """Run the Kafka consumer group on the interaction and feedback topics."""
    from services import consume as consume_mod

    _setup_logging()
    consume_mod.run(get_settings(), metrics_port)


@app.command()
def produce(file: Path = typer.Argument(..., exists=True, help="JSONL file, one event per line."),
            kind: str = typer.Option("interaction", help="interaction | feedback"),
            topic: str = typer.Option(None, help="Override the topic.")) -> None:
    """Send a JSONL file of events to Kafka (key = conversation id) for trying the service out."""
    from services import produce as produce_mod

    _echo_json(produce_mod.produce_file(get_settings(), file, kind=kind, topic=topic))


@dlq_app.command("replay")
def dlq_replay(ids: list[int] = typer.Option(None, "--id", help="Only these dead letters (default: all open).")) -> None:
    """Run open dead letters through the ingest pipeline again (after a fix); print what happened."""
    from services import replay

    _echo_json(replay.replay(get_settings(), ids or None))


@app.command("demo")
def demo_cmd() -> None:
    """The whole loop on one command: `up --demo` (what `make run` does)."""
    from services import up as up_mod

    _setup_logging()
    up_mod.run(get_settings(), demo=True)


if __name__ == "__main__":
    main()
