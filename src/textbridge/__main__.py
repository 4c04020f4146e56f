from textbridge.cli import app

app()
