from cephagent.app import main

main()
