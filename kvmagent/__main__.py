from kvmagent.app import main

main()
