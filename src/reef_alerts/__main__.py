from reef_alerts.entrypoints.cli import main

main()
