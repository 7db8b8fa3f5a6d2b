from sftpbsagent.app import main

main()
