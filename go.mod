module github.com/hoardcache/hoard

go 1.26.0

require (
	github.com/bradfitz/gomemcache v0.0.0-20260422231931-4d751bb6e37c
	github.com/maypok86/otter/v2 v2.4.0
	github.com/redis/rueidis v1.0.79
	golang.org/x/sync v0.25.0
)

require golang.org/x/sys v0.49.0 // indirect
