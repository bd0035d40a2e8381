from securecomm.cli import app

if __name__ == "__main__":  # not when a worker process re-imports the main module
    app(prog_name="securecomm")
