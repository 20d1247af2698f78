using System.Globalization;
using System.Runtime.CompilerServices;

namespace TokenGateway.Core.Budgets;

/// <summary>One concrete budget window: its UTC bounds and a stable key such as <c>day:2026-11-05</c>.</summary>
public readonly record struct BudgetWindow(BudgetPeriod Period, DateTimeOffset Start, DateTimeOffset End, string Key)
{
    /// <summary>When the window ends and counters start from zero (same as <see cref="End"/>).</summary>
    public DateTimeOffset ResetsAt => End;

    /// <summary>True when <paramref name="instant"/> falls inside the window.</summary>
    public bool Contains(DateTimeOffset instant) => instant >= Start && instant < End;
}

/// <summary>UTC calendar period math: day, ISO week (starting Monday) and month.</summary>
public static class BudgetPeriods
{
    // The last window computed per period: admission asks for "now" on every request, and it rarely moves.
    private static readonly StrongBox<BudgetWindow>?[] _last = new StrongBox<BudgetWindow>?[3];

    /// <summary>Returns the window of <paramref name="period"/> containing <paramref name="now"/>.</summary>
    public static BudgetWindow Current(BudgetPeriod period, DateTimeOffset now)
    {
        var index = (int)period;
        if ((uint)index < (uint)_last.Length && Volatile.Read(ref _last[index]) is { } cached && cached.Value.Contains(now))
        {
            return cached.Value;
        }

        var window = Compute(period, now);
        if ((uint)index < (uint)_last.Length)
        {
            Volatile.Write(ref _last[index], new StrongBox<BudgetWindow>(window));
        }

        return window;
    }

    private static BudgetWindow Compute(BudgetPeriod period, DateTimeOffset now)
    {
        var utc = now.ToUniversalTime();
        var day = new DateTimeOffset(utc.Year, utc.Month, utc.Day, 0, 0, 0, TimeSpan.Zero);
        switch (period)
        {
            case BudgetPeriod.Day:
                return new(period, day, day.AddDays(1), "day:" + day.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture));
            case BudgetPeriod.Week:
                var sinceMonday = ((int)day.DayOfWeek + 6) % 7;
                var monday = day.AddDays(-sinceMonday);
                var isoYear = ISOWeek.GetYear(monday.UtcDateTime);
                var isoWeek = ISOWeek.GetWeekOfYear(monday.UtcDateTime);
                return new(period, monday, monday.AddDays(7), string.Create(CultureInfo.InvariantCulture, $"week:{isoYear:D4}-W{isoWeek:D2}"));
            case BudgetPeriod.Month:
                var first = new DateTimeOffset(utc.Year, utc.Month, 1, 0, 0, 0, TimeSpan.Zero);
                return new(period, first, first.AddMonths(1), "month:" + first.ToString("yyyy-MM", CultureInfo.InvariantCulture));
            default:
                throw new ArgumentOutOfRangeException(nameof(period), period, "Unknown budget period.");
        }
    }
}
