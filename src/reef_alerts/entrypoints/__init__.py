"""Entry points: the typer CLI, the evaluation loop with its signal handling, and logging set-up."""
