package finops

import (
	"math"
	"strconv"
	"strings"
)

// Precision says how Money rounds.
type Precision int

// The precisions of Money.
const (
	// Cents always shows two decimals: "$58.52", "$1,234.00". Admission
	// messages use it, so the numbers add up to the cent.
	Cents Precision = iota
	// WholeFrom100 shows whole units from 100 up and cents below, as a
	// person reads a bill: "$4,120", "$12.40". Alerts use it.
	WholeFrom100
)

// symbols of the currencies written before the amount; others follow it
// as a code ("4,120 CHF").
var symbols = map[string]string{
	"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "INR": "₹",
	"CAD": "CA$", "AUD": "A$", "CNY": "CN¥",
}

// Money writes an amount for a person, with thousands separators and the
// currency's symbol ("$1,234.56", "€5", "1,000 CHF"). It is the one money
// formatter of Tollgate's messages, alerts and tables.
func Money(v float64, currency string, p Precision) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "n/a"
	}
	sign := ""
	if v < 0 {
		sign, v = "-", -v
	}
	var digits string
	switch {
	case v >= 1e15:
		digits = strconv.FormatFloat(v, 'g', 4, 64)
	case p == WholeFrom100 && (v >= 100 || v == math.Trunc(v)):
		digits = group(strconv.FormatFloat(math.Round(v), 'f', 0, 64))
	default:
		whole, frac, _ := strings.Cut(strconv.FormatFloat(v, 'f', 2, 64), ".")
		digits = group(whole) + "." + frac
	}
	if sym, ok := symbols[currency]; ok {
		return sign + sym + digits
	}
	if currency == "" {
		return sign + digits
	}
	return sign + digits + " " + currency
}

// Amount writes an amount for machines (Budget status, CSV, JSON, tables
// with a currency column): a plain decimal with two places, "1234.56".
func Amount(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

// group puts thousands separators into a string of digits.
func group(digits string) string {
	if len(digits) <= 3 {
		return digits
	}
	var b strings.Builder
	first := len(digits) % 3
	if first > 0 {
		b.WriteString(digits[:first])
	}
	for i := first; i < len(digits); i += 3 {
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(digits[i : i+3])
	}
	return b.String()
}
