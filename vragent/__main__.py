from vragent.app import main

main()
