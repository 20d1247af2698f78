using TokenGateway.Core.Budgets;

namespace TokenGateway.Core.Tests.Budgets;

public sealed class BudgetPeriodsTests
{
    [Fact]
    public void Current_Day_IsUtcCalendarDay()
    {
        var window = BudgetPeriods.Current(BudgetPeriod.Day, new DateTimeOffset(2026, 11, 5, 23, 59, 59, TimeSpan.Zero));

        Assert.Equal(new DateTimeOffset(2026, 11, 5, 0, 0, 0, TimeSpan.Zero), window.Start);
        Assert.Equal(new DateTimeOffset(2026, 11, 6, 0, 0, 0, TimeSpan.Zero), window.ResetsAt);
        Assert.Equal("day:2026-11-05", window.Key);
    }

    [Fact]
    public void Current_OffsetInput_UsesUtc()
    {
        // 01:00 at +02:00 is 23:00 UTC of the previous day.
        var window = BudgetPeriods.Current(BudgetPeriod.Day, new DateTimeOffset(2026, 11, 6, 1, 0, 0, TimeSpan.FromHours(2)));

        Assert.Equal("day:2026-11-05", window.Key);
    }

    [Theory]
    [InlineData(2026, 11, 5, "2026-11-02", "week:2026-W45")] // Thursday
    [InlineData(2026, 11, 2, "2026-11-02", "week:2026-W45")] // Monday
    [InlineData(2026, 11, 8, "2026-11-02", "week:2026-W45")] // Sunday
    [InlineData(2027, 1, 1, "2026-12-28", "week:2026-W53")]  // ISO week-year differs from calendar year
    [InlineData(2024, 12, 31, "2024-12-30", "week:2025-W01")]
    public void Current_Week_StartsMondayWithIsoKey(int year, int month, int day, string monday, string key)
    {
        var window = BudgetPeriods.Current(BudgetPeriod.Week, new DateTimeOffset(year, month, day, 12, 0, 0, TimeSpan.Zero));

        Assert.Equal(DateTimeOffset.Parse(monday + "T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture), window.Start);
        Assert.Equal(window.Start.AddDays(7), window.End);
        Assert.Equal(key, window.Key);
    }

    [Fact]
    public void Current_Month_IsCalendarMonth()
    {
        var window = BudgetPeriods.Current(BudgetPeriod.Month, new DateTimeOffset(2028, 2, 29, 8, 0, 0, TimeSpan.Zero));

        Assert.Equal(new DateTimeOffset(2028, 2, 1, 0, 0, 0, TimeSpan.Zero), window.Start);
        Assert.Equal(new DateTimeOffset(2028, 3, 1, 0, 0, 0, TimeSpan.Zero), window.End);
        Assert.Equal("month:2028-02", window.Key);
        Assert.True(window.Contains(new DateTimeOffset(2028, 2, 29, 23, 59, 59, TimeSpan.Zero)));
        Assert.False(window.Contains(window.End));
    }
}
