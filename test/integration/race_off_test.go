//go:build !race

package integration

// raceEnabled is set when the tests run with the race detector (-race);
// the fibguard binary they exec is then built with it too.
const raceEnabled = false
