package live

import (
	"errors"
	"fmt"
	"syscall"

	"github.com/fibguard/fibguard/fib"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// RouteGet asks the kernel of a namespace how it routes a packet, as
// `ip route get` does (RTM_GETROUTE with RTM_F_LOOKUP_TABLE), and returns
// its answer: the route type, table, device, gateway and the source
// address it reports.
//
// When the kernel refuses the lookup, Result.Err holds its errno (EINVAL,
// ENETUNREACH, EHOSTUNREACH, EACCES, ENETDOWN ...) and the error is nil; an
// IIF or OIF that does not exist gives ENODEV the same way. The error is
// for failures to ask at all, such as a missing namespace.
//
// How the query maps to the request:
//   - With IIF set the lookup is an input lookup; the kernel then needs a
//     source address (Src) for IPv4 and answers EINVAL without one.
//   - An output lookup carries UID as the socket's user (0 is root), so
//     the answer does not depend on who calls RouteGet.
//   - Mark, IPProto, SPort and DPort are sent when non-zero; TOS is the
//     request's rtm_tos.
//
// PrefSrc is the source the kernel reports: for an IPv4 output lookup only
// when Src is unset (it picks Src otherwise), for IPv6 in both cases, for an
// input lookup never.
func RouteGet(netns string, q fib.Query) (fib.Result, error) {
	n, err := Open(netns)
	if err != nil {
		return fib.Result{}, fmt.Errorf("route get %s: %w", q.Dst, err)
	}
	defer n.Close()
	return n.RouteGet(q)
}

// RouteGet is the package's RouteGet on the open namespace.
func (n *Namespace) RouteGet(q fib.Query) (fib.Result, error) {
	if n.t == nil {
		return fib.Result{}, fmt.Errorf("route get %s: %w", q.Dst, errClosed)
	}
	if !q.Dst.IsValid() {
		return fib.Result{}, errors.New("route get: no destination")
	}
	if q.Src.IsValid() && fib.FamilyOf(q.Src) != fib.FamilyOf(q.Dst) {
		return fib.Result{}, fmt.Errorf("route get %s: source %s of another family", q.Dst, q.Src)
	}
	res, err := n.t.routeGet(q)
	if err != nil {
		return fib.Result{}, fmt.Errorf("route get %s in %s: %w", q.Dst, n.t, err)
	}
	return res, nil
}

func (t *target) routeGet(q fib.Query) (fib.Result, error) {
	res := fib.Result{Dst: q.Dst}
	ans, err := t.getRoute(q, unix.RTM_F_LOOKUP_TABLE)
	if err != nil {
		return res, err
	}
	if !ans.found {
		res.Err = ans.refused
		return res, nil
	}
	r, err := parseRoute(ans.msg, t.linkName)
	if err != nil {
		return res, fmt.Errorf("answer: %w", err)
	}
	res.Type = r.Type
	res.Table = r.Table
	res.PrefSrc = r.PrefSrc
	if len(r.NextHops) > 0 {
		res.Dev = r.NextHops[0].Link
		res.Gateway = r.NextHops[0].Gateway
	}
	return res, nil
}

// answer is the kernel's reply to RTM_GETROUTE: one RTM_NEWROUTE message
// (found), or the errno it refused the lookup with.
type answer struct {
	found   bool
	msg     []byte
	refused syscall.Errno
}

// getRoute sends RTM_GETROUTE for a query, with the request flags given
// (RTM_F_LOOKUP_TABLE, RTM_F_FIB_MATCH), and returns the kernel's answer; a
// refusal is ENODEV for an IIF or OIF that does not exist. The error is
// for failures to ask.
func (t *target) getRoute(q fib.Query, flags uint32) (answer, error) {
	family := fib.FamilyOf(q.Dst)
	bits := uint8(q.Dst.BitLen())
	hdr := &nl.RtMsg{RtMsg: unix.RtMsg{
		Family:  uint8(family),
		Dst_len: bits,
		Tos:     q.TOS,
		Flags:   flags,
	}}
	attrs := []*nl.RtAttr{nl.NewRtAttr(unix.RTA_DST, q.Dst.AsSlice())}
	if q.Src.IsValid() {
		hdr.Src_len = bits
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_SRC, q.Src.AsSlice()))
	}
	for _, dev := range []struct {
		name string
		attr int
	}{{q.IIF, unix.RTA_IIF}, {q.OIF, unix.RTA_OIF}} {
		if dev.name == "" {
			continue
		}
		index, err := t.linkIndex(dev.name)
		if errors.Is(err, unix.ENODEV) {
			return answer{refused: unix.ENODEV}, nil
		}
		if err != nil {
			return answer{}, fmt.Errorf("device %s: %w", dev.name, err)
		}
		attrs = append(attrs, u32Attr(dev.attr, uint32(index)))
	}
	if q.IIF == "" {
		attrs = append(attrs, u32Attr(unix.RTA_UID, q.UID))
	}
	if q.Mark != 0 {
		attrs = append(attrs, u32Attr(unix.RTA_MARK, q.Mark))
	}
	if q.IPProto != 0 {
		attrs = append(attrs, nl.NewRtAttr(unix.RTA_IP_PROTO, []byte{q.IPProto}))
	}
	if q.SPort != 0 {
		attrs = append(attrs, be16Attr(unix.RTA_SPORT, q.SPort))
	}
	if q.DPort != 0 {
		attrs = append(attrs, be16Attr(unix.RTA_DPORT, q.DPort))
	}

	req := nl.NewNetlinkRequest(unix.RTM_GETROUTE, 0)
	req.AddData(hdr)
	for _, a := range attrs {
		req.AddData(a)
	}
	msgs, err := t.request(req, unix.RTM_NEWROUTE)
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return answer{refused: errno}, nil
	}
	if err != nil {
		return answer{}, err
	}
	if len(msgs) != 1 {
		return answer{}, fmt.Errorf("%d answers, want 1", len(msgs))
	}
	return answer{found: true, msg: msgs[0]}, nil
}

// linkName returns the name of a device: the name the last link dump of
// this namespace gave it (LoadFor's, moments before), else the kernel's.
func (t *target) linkName(index int) (string, error) {
	if n, ok := t.names[index]; ok {
		return n, nil
	}
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(u32Attr(unix.IFLA_EXT_MASK, rtextFilterSkipStats))
	l, err := t.getLink(req)
	if err != nil {
		return "", fmt.Errorf("device index %d: %w", index, err)
	}
	return l.Name, nil
}

// linkIndex asks the kernel for the index of the device of that name;
// the error is ENODEV when there is none.
func (t *target) linkIndex(name string) (int, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, 0)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	req.AddData(u32Attr(unix.IFLA_EXT_MASK, rtextFilterSkipStats))
	l, err := t.getLink(req)
	if err != nil {
		return 0, err
	}
	return l.Index, nil
}

// getLink executes an RTM_GETLINK request for one device.
func (t *target) getLink(req *nl.NetlinkRequest) (fib.Link, error) {
	msgs, err := t.request(req, unix.RTM_NEWLINK)
	if err != nil {
		return fib.Link{}, err
	}
	if len(msgs) != 1 {
		return fib.Link{}, fmt.Errorf("%d answers, want 1", len(msgs))
	}
	l, _, err := parseLink(msgs[0])
	return l, err
}
