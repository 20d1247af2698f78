using Xunit.Abstractions;
using Xunit.Sdk;

namespace TokenGateway.Storage.Tests.TestSupport;

/// <summary>Marks a test class whose tests run against the real PostgreSQL server.</summary>
public interface IPostgresBacked;

/// <summary>
/// A contract test declared once on an abstract base class and run by each backend's subclass; in a subclass marked
/// <see cref="IPostgresBacked"/> it is skipped, with the reason, when the PostgreSQL server does not answer.
/// </summary>
[AttributeUsage(AttributeTargets.Method)]
[XunitTestCaseDiscoverer("TokenGateway.Storage.Tests.TestSupport.StoreFactDiscoverer", "TokenGateway.Storage.Tests")]
public sealed class StoreFactAttribute : FactAttribute;

/// <summary>Discovers <see cref="StoreFactAttribute"/> tests: skipped for PostgreSQL-backed classes without a server.</summary>
public sealed class StoreFactDiscoverer(IMessageSink diagnosticMessageSink) : IXunitTestCaseDiscoverer
{
    public IEnumerable<IXunitTestCase> Discover(ITestFrameworkDiscoveryOptions discoveryOptions, ITestMethod testMethod, IAttributeInfo factAttribute)
    {
        var display = discoveryOptions.MethodDisplayOrDefault();
        var displayOptions = discoveryOptions.MethodDisplayOptionsOrDefault();
        if (typeof(IPostgresBacked).IsAssignableFrom(testMethod.TestClass.Class.ToRuntimeType()) && PostgresTestServer.UnavailableReason is { } reason)
        {
            return [new XunitSkippedDataRowTestCase(diagnosticMessageSink, display, displayOptions, testMethod, reason)];
        }

        return [new XunitTestCase(diagnosticMessageSink, display, displayOptions, testMethod)];
    }
}
