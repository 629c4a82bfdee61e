"""CLI commands of the retrain domain (registered on the main `feedback-factory` app)."""

import typer

app = typer.Typer(help="Retrain commands.", no_args_is_help=True)
