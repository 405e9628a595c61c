from rollback_pm.cli import main

main()
