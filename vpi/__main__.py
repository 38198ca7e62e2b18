from vpi.cli import main

main()
