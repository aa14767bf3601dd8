from precog.cli.main import run

run()
