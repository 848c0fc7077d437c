package rowstate

import "fmt"

// Dialect is what differs between the SQL of the stores for the GCRA upsert.
type Dialect struct {
	Now      string // the instant the call read its clock at, in nanoseconds
	Rate     string // the placeholders of the GCRA arguments
	NQ, NR   string
	CQ, CR   string
	Min, Max string                   // the two-argument functions: "min" and "max", or "LEAST" and "GREATEST"
	Bool2Int func(cond string) string // an integer 1 or 0 from a condition
	Row      string                   // the prefix of the existing row's columns: "" or "r."
}

// GCRAUpdate returns the SET list and WHERE condition of the GCRA upsert's DO UPDATE, over
// the existing row's columns at, x and y, following the formulas of [GCRA]. The decision's
// instant is the later of the call's clock and the row's y (see [Row]), and is written to y.
func GCRAUpdate(d Dialect) (set, where string) {
	at, x := d.Row+"at", d.Row+"x"
	now := fmt.Sprintf("%s(%s, %sy)", d.Max, d.Now, d.Row)
	b := fmt.Sprintf("(%s > %s OR %s = %s AND %s > 0)", at, now, at, now, x)
	bAt := fmt.Sprintf("(CASE WHEN %s THEN %s ELSE %s END)", b, at, now)
	bX := fmt.Sprintf("(CASE WHEN %s THEN %s(%s, %s - 1) ELSE 0 END)", b, d.Min, x, d.Rate)
	carry := fmt.Sprintf("(%s >= %s - %s)", bX, d.Rate, d.NR)
	fAt := fmt.Sprintf("(%s + %s + %s)", bAt, d.NQ, d.Bool2Int(carry))
	fX := fmt.Sprintf("(CASE WHEN %s THEN %s - (%s - %s) ELSE %s + %s END)", carry, bX, d.Rate, d.NR, bX, d.NR)
	lim := fmt.Sprintf("(%s + %s)", now, d.CQ)
	where = fmt.Sprintf("(%s < %s OR %s = %s AND %s <= %s)", fAt, lim, fAt, lim, fX, d.CR)
	set = fmt.Sprintf("at = %s, x = %s, y = %s, log = NULL, expires = %s + %s", fAt, fX, now, fAt, d.Bool2Int(fX+" > 0"))
	return set, where
}
