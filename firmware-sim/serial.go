package firmwaresim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/abc4logistics/tankguard/sensors"
)

// openSerial creates the truck's pseudo-terminal. The simulator keeps the
// slave side open itself, so a gateway may open and close the slave path as
// often as it likes without the master seeing a hang-up. The slave is raw
// (no echo, no line editing, no CR/LF translation). Writes to the master
// never block: when nobody drains the terminal and its buffer is full, the
// sentences are dropped (and not recorded as truth).
func (t *truck) openSerial() error {
	master, slave, err := pty.Open()
	if err != nil {
		return fmt.Errorf("open pty: %w", err)
	}
	if err := makeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("pty raw mode: %w", err)
	}
	mfd := int(master.Fd())
	if err := unix.SetNonblock(mfd, true); err != nil {
		master.Close()
		slave.Close()
		return fmt.Errorf("pty non-blocking: %w", err)
	}
	t.master, t.mfd, t.slave, t.serialPath = master, mfd, slave, slave.Name()
	return nil
}

// makeRaw is cfmakeraw(3).
func makeRaw(fd int) error {
	tio, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return err
	}
	tio.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	tio.Oflag &^= unix.OPOST
	tio.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	tio.Cflag &^= unix.CSIZE | unix.PARENB
	tio.Cflag |= unix.CS8
	tio.Cc[unix.VMIN] = 1
	tio.Cc[unix.VTIME] = 0
	return unix.IoctlSetTermios(fd, unix.TCSETS, tio)
}

// sendSerial writes b to the terminal without blocking and reports whether
// it was taken. A backlog left by a partial write is sent first; while it
// cannot be, new sentences are dropped.
func (t *truck) sendSerial(b []byte) bool {
	for len(t.pending) > 0 {
		n, err := unix.Write(t.mfd, t.pending)
		if n > 0 {
			t.pending = t.pending[n:]
		}
		if err != nil || n <= 0 {
			return false
		}
	}
	n, err := unix.Write(t.mfd, b)
	if n <= 0 {
		if err != nil && !errors.Is(err, unix.EAGAIN) {
			return false
		}
		return false
	}
	if n < len(b) {
		t.pending = append(t.pending[:0], b[n:]...)
	}
	return true
}

// nmeaLines formats the truck's RMC and GGA sentences for time now.
func (t *truck) nmeaLines(now time.Time) []byte {
	p := t.phys
	talker := "GP"
	if t.idx%2 == 1 {
		talker = "GN"
	}
	u := now.UTC()
	hms := fmt.Sprintf("%02d%02d%02d.%02d", u.Hour(), u.Minute(), u.Second(), u.Nanosecond()/1e7)
	lat, ns := nmeaAngle(p.lat, 2), "N"
	if p.lat < 0 {
		ns = "S"
	}
	lon, ew := nmeaAngle(p.lon, 3), "E"
	if p.lon < 0 {
		ew = "W"
	}
	knots := strconv.FormatFloat(p.speed/1.852, 'f', 2, 64)
	course := strconv.FormatFloat(math.Mod(p.heading+360, 360), 'f', 1, 64)
	date := fmt.Sprintf("%02d%02d%02d", u.Day(), int(u.Month()), u.Year()%100)
	b := t.line[:0]
	b = appendSentence(b, talker+"RMC,"+hms+",A,"+lat+","+ns+","+lon+","+ew+","+knots+","+course+","+date+",,,A")
	b = appendSentence(b, fmt.Sprintf("%sGGA,%s,%s,%s,%s,%s,1,%02d,0.9,12.0,M,47.0,M,,", talker, hms, lat, ns, lon, ew, p.sats))
	t.line = b
	return b
}

// nmeaAngle formats |deg| as NMEA (d)ddmm.mmmmm.
func nmeaAngle(deg float64, degDigits int) string {
	m := int64(math.Round(math.Abs(deg) * 60 * 1e5)) // 1e-5 minutes
	d, rem := m/(60*1e5), m%(60*1e5)
	return fmt.Sprintf("%0*d%02d.%05d", degDigits, d, rem/1e5, rem%1e5)
}

// appendSentence appends "$body*hh\r\n".
func appendSentence(b []byte, body string) []byte {
	b = append(b, '$')
	b = append(b, body...)
	b = append(b, '*')
	b = append(b, sensors.NMEAChecksum(body)...)
	return append(b, '\r', '\n')
}

// drainSerial waits, up to timeout, until every terminal's reader has taken
// what was written, so stopping does not discard sentences already recorded
// as truth. Terminals nobody reads just wait out the timeout.
func (s *Sim) drainSerial(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for _, t := range s.trucks {
		if t.slave == nil {
			continue
		}
		for time.Now().Before(deadline) {
			if len(t.pending) > 0 {
				t.sendSerial(nil)
			}
			n, err := unix.IoctlGetInt(int(t.slave.Fd()), unix.TIOCINQ)
			if err != nil || (n == 0 && len(t.pending) == 0) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
