from certsmith.cli.main import main

main()
