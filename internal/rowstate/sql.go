package rowstate

import "fmt"

// Dialect is what differs between the SQL of the stores for the GCRA upsert.
type Dialect struct {
	Now      string // the expression of the current instant in nanoseconds
	Rate     string // the placeholders of the GCRA arguments
	NQ, NR   string
	CQ, CR   string
	Min      string                   // the two-argument minimum function: "min" or "LEAST"
	Bool2Int func(cond string) string // an integer 1 or 0 from a condition
	Row      string                   // the prefix of the existing row's columns: "" or "r."
	Y        string                   // the value the update writes to y
}

// GCRAUpdate returns the SET list and WHERE condition of the GCRA upsert's DO UPDATE, over
// the existing row's columns at and x, following the formulas of [GCRA].
func GCRAUpdate(d Dialect) (set, where string) {
	at, x := d.Row+"at", d.Row+"x"
	b := fmt.Sprintf("(%s > %s OR %s = %s AND %s > 0)", at, d.Now, at, d.Now, x)
	bAt := fmt.Sprintf("(CASE WHEN %s THEN %s ELSE %s END)", b, at, d.Now)
	bX := fmt.Sprintf("(CASE WHEN %s THEN %s(%s, %s - 1) ELSE 0 END)", b, d.Min, x, d.Rate)
	carry := fmt.Sprintf("(%s >= %s - %s)", bX, d.Rate, d.NR)
	fAt := fmt.Sprintf("(%s + %s + %s)", bAt, d.NQ, d.Bool2Int(carry))
	fX := fmt.Sprintf("(CASE WHEN %s THEN %s - (%s - %s) ELSE %s + %s END)", carry, bX, d.Rate, d.NR, bX, d.NR)
	lim := fmt.Sprintf("(%s + %s)", d.Now, d.CQ)
	where = fmt.Sprintf("(%s < %s OR %s = %s AND %s <= %s)", fAt, lim, fAt, lim, fX, d.CR)
	set = fmt.Sprintf("at = %s, x = %s, y = %s, log = NULL, expires = %s + %s", fAt, fX, d.Y, fAt, d.Bool2Int(fX+" > 0"))
	return set, where
}
