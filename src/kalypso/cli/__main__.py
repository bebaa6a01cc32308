from kalypso.cli import main

main()
