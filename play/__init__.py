"""Playing matches between drivers (trained models, past versions, scripted bots) in one process."""
