using Serilog;
using Serilog.Core;
using Serilog.Events;

namespace TokenGateway.Telemetry;

/// <summary>
/// Silences the <c>Microsoft.AspNetCore.Hosting.Diagnostics</c> log category (issue #17, ADR 0004). While that category
/// is enabled even at Critical, ASP.NET Core starts an <see cref="System.Diagnostics.Activity"/> (with a fresh W3C
/// trace id, which HttpClient then sends upstream) and begins a logging scope (<c>RequestId</c>, <c>RequestPath</c>)
/// for every request, whether or not anything reads them. With the shipped <c>Microsoft.AspNetCore</c> override at
/// Warning, the category writes nothing per request; what it loses is its Critical "application startup exception"
/// line, and that exception still ends the process with its stack trace.
/// </summary>
internal static class HostingDiagnosticsLog
{
    public const string Category = "Microsoft.AspNetCore.Hosting.Diagnostics";

    /// <summary>Above Fatal: no level is enabled (Serilog's documented way to turn a source off).</summary>
    public const LogEventLevel Off = (LogEventLevel)((int)LogEventLevel.Fatal + 1);

    /// <summary>Turns the category off unless the <c>Serilog</c> section names a level for it.</summary>
    public static LoggerConfiguration Configure(LoggerConfiguration logger, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(logger);
        ArgumentNullException.ThrowIfNull(configuration);
        return configuration[$"Serilog:MinimumLevel:Override:{Category}"] is null
            ? logger.MinimumLevel.Override(Category, new LoggingLevelSwitch(Off))
            : logger;
    }
}
