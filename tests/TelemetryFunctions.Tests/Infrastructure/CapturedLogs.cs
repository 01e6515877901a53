using Microsoft.Extensions.Logging;

namespace TelemetryFunctions.Tests.Infrastructure;

/// <summary>One log entry: its message with the exception appended, so a test can check neither leaks what it must not.</summary>
public sealed record LogEntry(string Category, LogLevel Level, string Message, IReadOnlyList<KeyValuePair<string, object?>> State, Exception? Exception)
{
    public object? Value(string name) => State.Single(p => p.Key == name).Value;
}

/// <summary>
/// Keeps every log entry written through it: a logger provider for a host (<see cref="LocalHostFactory"/>), or a
/// logger for one class built by hand (<see cref="CreateLogger{T}"/>).
/// </summary>
public sealed class CapturedLogs : ILoggerProvider
{
    private readonly List<LogEntry> _entries = [];

    public IReadOnlyList<LogEntry> Entries
    {
        get
        {
            lock (_entries)
            {
                return [.. _entries];
            }
        }
    }

    public IReadOnlyList<LogEntry> Of<T>() => [.. Entries.Where(e => e.Category == typeof(T).FullName)];

    public ILogger CreateLogger(string categoryName) => new CategoryLogger(this, categoryName);

    public ILogger<T> CreateLogger<T>() => new CategoryLogger<T>(this);

    public void Dispose()
    {
    }

    private void Add(LogEntry entry)
    {
        lock (_entries)
        {
            _entries.Add(entry);
        }
    }

    private class CategoryLogger(CapturedLogs logs, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            // The state is copied now: some states (ASP.NET Core's request logs) read the request lazily, which is gone later.
            logs.Add(new LogEntry(category, logLevel, formatter(state, exception) + exception, state is IReadOnlyList<KeyValuePair<string, object?>> values ? [.. values] : [], exception));
    }

    private sealed class CategoryLogger<T>(CapturedLogs logs) : CategoryLogger(logs, typeof(T).FullName!), ILogger<T>;
}
