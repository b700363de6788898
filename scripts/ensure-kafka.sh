#!/bin/sh
# Fetches, once, the Apache Kafka broker the Kafka connector tests run against: the pinned
# kafka_2.13 jar and every runtime dependency, from Maven Central (with Maven), into a cache
# outside the repo. test/support/kafka-broker.ts finds them at the same path (kafkaHome) and
# runs them with the `java` on PATH. The jars land in a temporary directory and are renamed
# into place, so an interrupted or concurrent run never leaves a half-filled libs/ behind.
set -eu

# Pinned like test/support/kafka-broker.ts (KAFKA_VERSION); change both together.
KAFKA_VERSION=4.4.0
# Kafka's own log4j (kafka-server's pom asks for log4j-api/-core 2.25.5). The distribution
# ships the slf4j binding in its tarball, not in any pom, so it is added here at the same version.
LOG4J_VERSION=2.25.5
DEPENDENCY_PLUGIN=org.apache.maven.plugins:maven-dependency-plugin:3.11.0
JAVA_MAJOR_MIN=17

cache="${XDG_CACHE_HOME:-$HOME/.cache}/eddy/test-servers"
home="$cache/kafka-$KAFKA_VERSION"

if ! command -v java >/dev/null 2>&1; then
  echo "eddy: the Kafka tests run Apache Kafka $KAFKA_VERSION, which needs Java $JAVA_MAJOR_MIN or newer, but there is no \`java\` on PATH (install a JDK, e.g. \`apt-get install openjdk-17-jdk-headless\`)" >&2
  exit 1
fi
# `openjdk version "17.0.15" 2025-04-15`, `java version "1.8.0_402"`, `openjdk version "25-ea" …`.
java_major=$(java -version 2>&1 | sed -n 's/^.* version "\([0-9]*\)[."-].*$/\1/p' | head -n 1)
if [ -z "$java_major" ] || [ "$java_major" -lt "$JAVA_MAJOR_MIN" ]; then
  echo "eddy: the Kafka tests run Apache Kafka $KAFKA_VERSION, which needs Java $JAVA_MAJOR_MIN or newer, but \`$(command -v java)\` is: $(java -version 2>&1 | head -n 1)" >&2
  exit 1
fi

if [ -d "$home/libs" ]; then
  exit 0
fi

if ! command -v mvn >/dev/null 2>&1; then
  echo "eddy: the Kafka tests need Apache Kafka $KAFKA_VERSION in $home/libs, fetched from Maven Central with Maven, but there is no \`mvn\` on PATH: \`apt-get install maven\`" >&2
  exit 1
fi

echo "eddy: fetching Apache Kafka $KAFKA_VERSION and its runtime dependencies from Maven Central for the Kafka tests (once, ~45 MB)..." >&2
mkdir -p "$home"
# Leftovers of runs that were killed outright (no trap ran) an hour or more ago.
find "$home" -maxdepth 1 -name '.fetch.*' -mmin +60 -exec rm -rf {} + 2>/dev/null || true
temporary=$(mktemp -d "$home/.fetch.XXXXXX")
trap 'rm -rf "$temporary"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# kafka_2.13 is the broker (kafka.Kafka) and the storage formatter (kafka.tools.StorageTool);
# kafka-tools has the admin CLIs (org.apache.kafka.tools.TopicCommand) and would drag in all of
# Kafka Connect, which no CLI the tests use needs.
cat >"$temporary/pom.xml" <<EOF
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>eddy.test</groupId>
  <artifactId>kafka-broker-libs</artifactId>
  <version>0</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion>
          <groupId>org.apache.kafka</groupId>
          <artifactId>connect-runtime</artifactId>
        </exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.apache.logging.log4j</groupId>
      <artifactId>log4j-slf4j-impl</artifactId>
      <version>$LOG4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF

# A private local repository: nothing lands in ~/.m2, and it goes away with $temporary.
# Mirrors and proxies from ~/.m2/settings.xml still apply. Maven's own output is shown only
# when it fails.
echo "eddy: resolving with $(command -v mvn) ($DEPENDENCY_PLUGIN)..." >&2
if ! mvn --batch-mode --no-transfer-progress \
  --file "$temporary/pom.xml" \
  -Dmaven.repo.local="$temporary/repository" \
  "$DEPENDENCY_PLUGIN:copy-dependencies" \
  -DincludeScope=runtime \
  -DoutputDirectory="$temporary/libs" >"$temporary/maven.log" 2>&1; then
  cat "$temporary/maven.log" >&2
  echo "eddy: fetching Apache Kafka $KAFKA_VERSION with Maven failed (output above)" >&2
  exit 1
fi
echo "eddy: checking that the classpath runs kafka.tools.StorageTool..." >&2

# The classpath must hold together before it is published: the formatter loads most of the broker.
if ! java -cp "$temporary/libs/*" kafka.tools.StorageTool version >/dev/null 2>"$temporary/check.log"; then
  cat "$temporary/check.log" >&2
  echo "eddy: the fetched Apache Kafka $KAFKA_VERSION classpath does not run kafka.tools.StorageTool (output above)" >&2
  exit 1
fi

# rename(2) of a directory fails when the target exists: then a concurrent run got there first.
if ! mv -T "$temporary/libs" "$home/libs" 2>/dev/null && [ ! -d "$home/libs" ]; then
  echo "eddy: could not move the fetched jars into $home/libs" >&2
  exit 1
fi
jars=$(find "$home/libs" -name '*.jar' | wc -l)
megabytes=$(du -sm "$home/libs" | cut -f 1)
echo "eddy: fetched Apache Kafka $KAFKA_VERSION into $home/libs ($jars jars, $megabytes MB)" >&2
