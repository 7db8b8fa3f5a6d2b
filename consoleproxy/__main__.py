from consoleproxy.app import main

main()
