from deidvid.cli import app

app()
