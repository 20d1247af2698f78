using System.Diagnostics;
using System.Runtime.InteropServices;

namespace TokenGateway.Insights;

/// <summary>
/// CPU time consumed by the calling thread (Linux <c>clock_gettime(CLOCK_THREAD_CPUTIME_ID)</c>); elsewhere the
/// elapsed wall time, which for the CPU-bound shadow evaluation is an upper bound.
/// </summary>
internal static class ThreadCpuClock
{
    private const int ClockThreadCpuTimeId = 3;

    /// <summary>True when <see cref="NowMicroseconds"/> reads the thread's CPU clock (false: wall clock).</summary>
    public static bool IsThreadCpuTime { get; } = OperatingSystem.IsLinux() && Probe();

    /// <summary>A reading in microseconds; subtract two readings on the same thread.</summary>
    public static long NowMicroseconds()
    {
        if (IsThreadCpuTime && clock_gettime(ClockThreadCpuTimeId, out var ts) == 0)
        {
            return (ts.Seconds * 1_000_000) + (ts.Nanoseconds / 1_000);
        }

        return Stopwatch.GetTimestamp() * 1_000_000 / Stopwatch.Frequency;
    }

    private static bool Probe()
    {
        try
        {
            return clock_gettime(ClockThreadCpuTimeId, out _) == 0;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    // DllImport, not LibraryImport: the struct is blittable, and LibraryImport would need the project to allow unsafe code.
#pragma warning disable SYSLIB1054, CA5392
    [DllImport("libc", SetLastError = false)]
    private static extern int clock_gettime(int clockId, out TimeSpec time);
#pragma warning restore SYSLIB1054, CA5392
}
