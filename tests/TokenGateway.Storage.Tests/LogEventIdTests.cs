using System.Reflection;
using Microsoft.Extensions.Logging;

namespace TokenGateway.Storage.Tests;

/// <summary>Every source-generated log event of Storage and Core has its own EventId (issue #11).</summary>
public sealed class LogEventIdTests
{
    [Fact]
    public void LoggerMessages_StorageAndCore_HaveUniqueEventIds()
    {
        var events = new[] { typeof(StorageOptions).Assembly, typeof(Core.Budgets.TeamPolicy).Assembly }
            .SelectMany(a => a.GetTypes())
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: $"{m.DeclaringType!.Name}.{m.Name}", Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(e => e.Attribute is not null)
            .ToList();

        var duplicates = events.GroupBy(e => e.Attribute!.EventId).Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(e => e.Method))}").ToList();

        Assert.NotEmpty(events);
        Assert.Empty(duplicates);
    }
}
