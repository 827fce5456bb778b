package buffer

func runCrashChild() bool { return false }
