from securecomm.cli import app

app(prog_name="securecomm")
