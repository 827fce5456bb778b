// Command demo runs the whole tankguard system on this machine.
package main

func main() {}
