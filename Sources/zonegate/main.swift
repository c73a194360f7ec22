import ZonegateCLI

Zonegate.runMain()
