import ZonegateCLI

await Zonegate.runMain()
