build-tsan/obj/gen/assets.o: build-tsan/gen/assets.c src/http/assets.h
src/http/assets.h:
